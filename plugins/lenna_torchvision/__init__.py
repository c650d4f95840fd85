"""The ``torchvision`` source: real models traced to Graph IR with random weights."""
