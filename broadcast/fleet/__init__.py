"""The receivers: their registry and broker credentials, their health, the brokers."""
