"""Research that measures the product (benchmarks, studies); a tracking run never imports it."""
