"""The receiver side: the agent that runs on the Pi, its players, and the shared wire protocol."""
