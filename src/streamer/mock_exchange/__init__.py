"""A local fake Binance that speaks the real protocol, for tests, the demo and benchmarks."""
