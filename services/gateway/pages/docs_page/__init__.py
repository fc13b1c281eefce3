"""The API docs page's own files: its shell and the script that asks for a token and starts Swagger UI."""
