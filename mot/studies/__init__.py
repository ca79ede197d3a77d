"""Research that measures the product: leave-one-sequence-out drivers, benchmarks and reports,
peer trackers, appearance / single-object / camera / cost studies.

Studies import the library; the library never imports them (``tests/test_layout.py`` checks it).
"""
