"""The generative filter: mask-guided diffusion counterparts of chest radiographs.

``filter.GenerativeFilter`` synthesises, ``train.train_filter`` trains, ``job`` runs work in
the background with progress and cancel, ``measure`` gives the identity proxy and the
kept-region fidelity. Importing this package loads neither torch nor diffusers.
"""
