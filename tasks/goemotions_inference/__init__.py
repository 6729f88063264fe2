"""Emotion inference over GoEmotions comments (multiple choice by log-likelihood)."""
