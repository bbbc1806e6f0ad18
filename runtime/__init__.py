"""sam2ms.runtime: lean tiled inference over tiles and scenes. Never imports torch.

Not implemented yet (see the runtime issue); nothing here pretends otherwise.
"""
