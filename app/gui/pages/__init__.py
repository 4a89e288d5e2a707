"""The main window's pages: Model, Flash, Live, Console, Records."""
