"""The model families the runner knows, by the name a recipe gives in its
`"family"` key."""

from keras_vae.runner.families.family import Family
from keras_vae.runner.families.image_vae import ImageVAE
from keras_vae.runner.families.sprites import Sprites
from keras_vae.runner.families.text import Text
from keras_vae.runner.families.vq_vae import VQVAEFamily

FAMILIES = {
    "image_vae": ImageVAE,
    "vq_vae": VQVAEFamily,
    "sprites": Sprites,
    "text": Text,
}

__all__ = ["FAMILIES", "Family", "ImageVAE", "Sprites", "Text", "VQVAEFamily"]
