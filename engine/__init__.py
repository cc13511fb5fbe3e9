"""Price-time matching engine (sans-I/O, one writer). Arrives with the order-entry issue."""
