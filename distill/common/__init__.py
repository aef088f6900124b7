"""What every stage shares that is not storage: config files, registries, input parsing, Ray, model lookup."""
