"""Drop-copy feeds (FIX drop-copy sessions, MQTT). Arrives with the drop-copy issue."""
