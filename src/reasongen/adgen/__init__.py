"""Task A (AdvertiseGen): attributes + controls -> a Chinese recommendation text."""
