"""The receiver side: the agent that runs on the Pi and its players (the wire protocol: `wire`)."""
