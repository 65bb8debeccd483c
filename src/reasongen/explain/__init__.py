"""Task B: personalized explanations (why this item, for this user) from user and item profiles."""
