"""`python -m zoo.train_sprites NAME ...`, the command the shipped presets
recorded, is `python -m zoo.train NAME ...`."""

from zoo.train import main_as

main = main_as("python -m zoo.train_sprites")
if __name__ == "__main__":
    main()
