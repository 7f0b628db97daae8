// ---- entity ----
