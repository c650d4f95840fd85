"""The ``resnet-family`` source: torchvision-layout ResNets of varied depth, width and block."""
