"""Everything that fits a model; never imported by a tracking run."""
