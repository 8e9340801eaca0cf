"""What people do: the desks the web and the `loa` command call."""
