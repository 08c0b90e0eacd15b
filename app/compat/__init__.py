"""Drop-in compatibility APIs for other mail-testing services' clients (thin adapters
over the native services): ``app.compat.mailslurp``, ``app.compat.mailpit``."""
