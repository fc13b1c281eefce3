"""The trace page's static files (index.html, trace.js, trace.css), served by services/gateway/pages/traces/page.py."""
