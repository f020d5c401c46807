"""HTTP routes of the chat service, one blueprint per concern."""
