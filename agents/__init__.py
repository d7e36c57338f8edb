"""The actors: providers, developers, free riders, exchange, arbitrageurs, metamodel."""
