"""The gateway's browser pages: public, data-free HTML shells whose scripts read the API with the user's token."""
