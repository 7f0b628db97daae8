//! Playbooks: which alerts propose which actions (work in progress).
