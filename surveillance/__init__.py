"""Market-abuse surveillance analytics (MLX). Arrives with the surveillance issue."""
