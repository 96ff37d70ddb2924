"""A runnable demo site for django_chatkit: ``make demo``, then sign in as demo / demo."""
