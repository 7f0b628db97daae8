// ---- overview ----
