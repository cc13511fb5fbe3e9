"""What stands behind the session layer: order entry (the venue) and the echo
application the FIX acceptance scripts expect."""
