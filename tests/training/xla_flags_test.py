"""The XLA:CPU flags keras_vae sets for JAX unless the user set XLA_FLAGS."""

from keras_vae.training.jax import DEFAULT_XLA_FLAGS, set_default_xla_flags


def test_sets_the_flags_when_xla_flags_is_unset():
    environ = {"PATH": "/bin"}
    assert set_default_xla_flags(environ)
    assert environ == {"PATH": "/bin", "XLA_FLAGS": DEFAULT_XLA_FLAGS}
    assert "--xla_cpu_use_onednn=true" in DEFAULT_XLA_FLAGS


def test_leaves_the_users_xla_flags_alone_even_empty():
    for value in ("", "--xla_cpu_use_onednn=false", "--xla_dump_to=/tmp/x"):
        environ = {"XLA_FLAGS": value}
        assert not set_default_xla_flags(environ)
        assert environ == {"XLA_FLAGS": value}


def test_opt_out():
    environ = {"KERAS_VAE_XLA_FLAGS": "0"}
    assert not set_default_xla_flags(environ)
    assert "XLA_FLAGS" not in environ
