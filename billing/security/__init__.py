"""Signing in safely: sign-in throttling (django-axes), the second factor (django-otp: an
authenticator app and recovery codes), and the staff idle timeout."""
