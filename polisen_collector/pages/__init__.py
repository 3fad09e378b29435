"""Reading the pages of events on polisen.se."""
