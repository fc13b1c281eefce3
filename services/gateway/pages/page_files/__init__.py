"""What every page of the gateway loads (session.js: token, API calls, event streams; base.css), served by
services/gateway/pages/shell.py at /assets/."""
