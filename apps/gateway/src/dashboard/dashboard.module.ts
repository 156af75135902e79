import { Module } from '@nestjs/common';
import { DashboardAssets } from './dashboard.assets';
import { DashboardController } from './dashboard.controller';

/** The dashboard page at `GET /` and its two static files under `/dashboard/`. */
@Module({ controllers: [DashboardController], providers: [DashboardAssets] })
export class DashboardModule {}
