"""FBNet: 22 searchable layers of 9 candidate blocks in its macro network, and their encoding."""
