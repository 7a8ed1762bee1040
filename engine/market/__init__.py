"""Market facts: listings and venues (symbol suffix -> exchange, currency, lots), trading costs."""
