"""`python -m zoo.train_text NAME ...`, the command the shipped presets
recorded, is `python -m zoo.train NAME ...`."""

from zoo.train import main_as

main = main_as("python -m zoo.train_text")
if __name__ == "__main__":
    main()
