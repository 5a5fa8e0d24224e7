"""The private names of torchmetrics and Lightning the package relies on, one small function each."""
