// Jinja
