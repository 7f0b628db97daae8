// ---- search ----
