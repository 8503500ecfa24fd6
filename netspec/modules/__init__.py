"""The ``torch.nn`` modules that kinds build. Imported only when a model is built, never by ``netspec check``."""
