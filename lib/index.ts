// The public API, named one by one: what jsii publishes to every language.
export { ModelSource, ModelArchive, type ModelSourceConfig, type ModelBucketOptions, type ModelUriOptions } from './model-source';
export { ServingImage, type ServingImageConfig, type ServingImageBuildOptions, type ModelServerImageOptions } from './serving-image';
export { type ExistingListenerOptions } from './model-endpoint';
export { ModelServiceBase } from './model-service-base';
export { type ModelServiceBaseProps } from './service-props';
export { FargateModelService, type FargateModelServiceProps } from './fargate-model-service';
export { GpuModelService, type GpuModelServiceProps } from './gpu-model-service';
export { ModelImageRepository, type ModelImageRepositoryProps } from './model-image-repository';
export { Rollout, type RolloutConfig, type CanaryRolloutOptions, type LinearRolloutOptions, type BlueGreenRolloutOptions } from './rollout';
export { GoldenRequests, type GoldenRequestsOptions } from './golden-requests';
export { type ModelAlarmsOptions } from './model-alarms-options';
export { ModelContainerContract } from './container-contract';
