"""Train and test steps for the TensorFlow backend (`tf.GradientTape`)."""

import tensorflow as tf
from keras.utils import unpack_x_y_sample_weight


class Trainer:
    """Mixin with the TensorFlow `train_step` / `test_step` of every model."""

    def train_step(self, data):
        x, _, _ = unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            terms = self.compute_loss_terms(x, training=True)
            loss = terms["loss"]
            if self.losses:
                loss = loss + tf.add_n(self.losses)
            scaled_loss = self.optimizer.scale_loss(loss)
        variables = self.trainable_variables
        gradients = tape.gradient(scaled_loss, variables)
        self.optimizer.apply(gradients, variables)
        return self.update_loss_trackers(terms)

    def test_step(self, data):
        x, _, _ = unpack_x_y_sample_weight(data)
        terms = self.compute_loss_terms(x, training=False)
        return self.update_loss_trackers(terms)
