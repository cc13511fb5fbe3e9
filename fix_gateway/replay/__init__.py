"""`fixgw replay`: list, show and re-drive the sessions kept in a session store."""
