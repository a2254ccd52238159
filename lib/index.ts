// The public API, named one by one: what jsii publishes to every language.
export { ModelSource, ModelArchive, type ModelSourceConfig, type ModelBucketOptions, type ModelUriOptions } from './model/model-source';
export { ServingImage, type ServingImageConfig, type ServingImageBuildOptions, type ModelServerImageOptions } from './image/serving-image';
export { type ExistingListenerOptions } from './service/model-endpoint';
export { ModelServiceBase } from './service/model-service-base';
export { type ModelServiceBaseProps, type ModelServiceSchedule } from './service/service-props';
export { FargateModelService, type FargateModelServiceProps } from './service/fargate-model-service';
export { GpuCapacity, type GpuCapacityProps, type GpuFleetProps } from './service/gpu-capacity';
export { GpuModelService, type GpuModelServiceProps } from './service/gpu-model-service';
export { ModelImageRepository, type ModelImageRepositoryProps } from './image/model-image-repository';
export { Rollout, type RolloutConfig, type CanaryRolloutOptions, type LinearRolloutOptions, type BlueGreenRolloutOptions } from './rollout/rollout';
export { GoldenRequests, type GoldenRequestsOptions } from './rollout/golden-requests';
export { type ModelAlarmsOptions } from './operations/model-alarms-options';
export { ModelContainerContract } from './container-contract';
