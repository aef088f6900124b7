"""Student training from a teacher cache."""
