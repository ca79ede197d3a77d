"""Everything that fits a model: the Siamese network, the XGBoost matcher, the SiamRPN refiner.

Never imported by a tracking run (``tests/test_layout.py`` checks it); the thin scripts in
``scripts/`` call into it.
"""
