"""Les extensions Sphinx du guide (typographie, orthographe, carnets, imports
des pages) : de la construction, que la bibliothèque du lecteur n'importe pas."""
