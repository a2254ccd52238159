export * from './model-source';
export * from './serving-image';
export * from './model-endpoint';
export * from './model-service-base';
export * from './fargate-model-service';
export * from './gpu-model-service';
export { InvalidPropError } from './validation';
export { MODEL_MOUNT_PATH, SERVER_CONTAINER_NAME, FETCHER_CONTAINER_NAME } from './model-containers';
export * from './model-image-repository';
