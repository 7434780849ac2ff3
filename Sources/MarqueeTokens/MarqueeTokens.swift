enum MarqueeTokensModule {}
