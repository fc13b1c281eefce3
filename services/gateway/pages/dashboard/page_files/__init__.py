"""The dashboard's static files (index.html, dashboard.js, charts.js, dashboard.css), served by
services/gateway/pages/dashboard/routes.py."""
