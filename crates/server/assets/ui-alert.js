// ---- alert ----
